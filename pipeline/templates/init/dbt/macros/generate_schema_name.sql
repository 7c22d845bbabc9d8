{# Plain schema names (staging, _build), as lakehouse publishes them. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ lakehouse.generate_schema_name(custom_schema_name, node) }}
{%- endmacro %}
