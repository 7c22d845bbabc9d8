{#
  Incremental models process only the raw batches they have not seen yet.

  Every raw row carries `_ingested_at`, the time its batch was landed; a table's batches
  are committed one after another, so the newest `_ingested_at` a model already holds is
  its watermark. The watermark is read while the model compiles and written into the SQL
  as a literal, so DuckDB skips whole batch files by their `load_date` partition (a batch
  that started after the watermark's batch was landed is filed under that day or a later
  one) and row groups by their statistics. A full refresh (`dbt build --full-refresh`) reads every batch and
  gives the same table.
#}

{# The newest value of `column` in `relation` (default: this model), as text; none when
   the model does not exist yet, is being rebuilt, or is empty. #}
{% macro lake_watermark(column='_ingested_at', relation=none) -%}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set result = run_query(
        'select cast(max(' ~ column ~ ') as varchar) from ' ~ (relation or this)
    ) -%}
    {{ return(result.columns[0].values()[0]) }}
{%- endmacro %}

{# A predicate (`true` on a full build) that keeps rows of batches landed after
   `watermark` (see lake_watermark); `partitioned=false` for a model, not a raw source. #}
{% macro landed_after(watermark, column='_ingested_at', partitioned=true) -%}
    {%- if watermark is none -%}
        true
    {%- elif not partitioned -%}
        {{ column }} > cast('{{ watermark }}' as timestamptz)
    {%- else -%}
        (load_date >= cast('{{ watermark[:10] }}' as date)
         and {{ column }} > cast('{{ watermark }}' as timestamptz))
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

{# The orders whose version or lines landed after the given watermarks: what the order
   facts rebuild on an incremental build. #}
{% macro changed_orders(orders_seen, lines_seen) -%}
    select order_id from {{ ref('stg_shop__orders') }}
    where {{ landed_after(orders_seen, partitioned=false) }}
    union
    select order_id from {{ ref('stg_shop__order_items') }}
    where {{ landed_after(lines_seen, partitioned=false) }}
{%- endmacro %}
