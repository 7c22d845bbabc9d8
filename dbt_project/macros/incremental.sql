{#
  Incremental models process only the raw rows committed since their last build.

  Every raw table is a DuckLake table, and every row carries the id of the snapshot (the
  commit) that wrote it, as the virtual column `snapshot_id`. Snapshot ids grow with
  commit order, whatever the clocks of the hosts that wrote them, so a batch that started
  early and committed late is still newer than everything committed before it. A model
  keeps the snapshot id of the rows it read as `_snapshot_id`; its watermark is the
  newest one it holds, read while it compiles and written into the SQL as a literal, so
  DuckLake skips every data file committed before it. A full refresh
  (`dbt build --full-refresh`) reads every row and gives the same table.
#}

{# The newest value of `column` in `relation` (default: this model), as text; none when
   the model does not exist yet, is being rebuilt, or is empty. #}
{% macro lake_watermark(column='_snapshot_id', relation=none) -%}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set result = run_query(
        'select cast(max(' ~ column ~ ') as varchar) from ' ~ (relation or this)
    ) -%}
    {{ return(result.columns[0].values()[0]) }}
{%- endmacro %}

{# A predicate (`true` on a full build) that keeps rows committed after `watermark` (see
   lake_watermark): `snapshot_id` on a raw source, `_snapshot_id` on a model. #}
{% macro landed_after(watermark, column='snapshot_id') -%}
    {%- if watermark is none -%}
        true
    {%- else -%}
        {{ column }} > {{ watermark | int }}
    {%- endif -%}
{%- endmacro %}

{# For incremental staging: the new rows of `relation` (a CTE) plus the versions this
   model already holds for the same keys, so that `latest_version` picks among all of
   them, exactly as a full build would. #}
{% macro with_current_versions(relation, key) -%}
    select * from {{ relation }}
    {%- if is_incremental() %}
    union all by name
    select * from {{ this }}
    where {{ key }} in (select {{ key }} from {{ relation }})
    {%- endif %}
{%- endmacro %}

{# The orders whose version or lines were committed after the given watermarks: what the
   order facts rebuild on an incremental build. #}
{% macro changed_orders(orders_seen, lines_seen) -%}
    select order_id from {{ ref('stg_shop__orders') }}
    where {{ landed_after(orders_seen, '_snapshot_id') }}
    union
    select order_id from {{ ref('stg_shop__order_items') }}
    where {{ landed_after(lines_seen, '_snapshot_id') }}
{%- endmacro %}
