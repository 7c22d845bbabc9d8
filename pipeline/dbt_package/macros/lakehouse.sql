{#
  lakehouse's macros for a project's staging models.

  A raw table holds every batch landed: a file landed again, overlapping incremental
  extracts, every version of a row. Staging keeps the latest version per primary key
  (the `primary_key:` declared in lakehouse.yml), the newest batch winning:

    {{ lakehouse.staged('suppliers', 'catalog', primary_key=['supplier_id', 'sku']) }}
#}

{% macro latest_version(key, order_by='_ingested_at desc, _load_id desc') -%}
    {%- set key = key if key is string else key | join(', ') -%}
    qualify row_number() over (partition by {{ key }} order by {{ order_by }}) = 1
{%- endmacro %}


{% macro staged(source_name, table_name, primary_key=none, order_by='_ingested_at desc, _load_id desc') -%}
select *
from {{ source(source_name, table_name) }}
{% if primary_key %}{{ lakehouse.latest_version(primary_key, order_by) }}{% endif %}
{%- endmacro %}


{# Layers get plain schema names (staging, _build) instead of dbt's <target>_<custom>:
   a project's own generate_schema_name calls this one. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
