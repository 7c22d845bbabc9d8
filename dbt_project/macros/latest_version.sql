{#
  Staging keeps the latest version of each key across raw batches (a file landed again,
  overlapping incremental extracts): by default the newest batch wins.
    {{ latest_version('order_id', 'updated_at desc, _ingested_at desc, _load_id desc') }}
#}
{% macro latest_version(key, order_by='_ingested_at desc, _load_id desc') -%}
    qualify row_number() over (partition by {{ key }} order by {{ order_by }}) = 1
{%- endmacro %}
