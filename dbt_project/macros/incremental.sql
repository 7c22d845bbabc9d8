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
    {%- do lake_hold_commits() -%}
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

{#
  Marts maintained from the changes of other marts. The marts are DuckLake tables, so
  `ducklake_table_changes` gives every row a build inserted or deleted between two lake
  snapshots (delete+insert rewrites a changed row: its old version comes out as a delete),
  and `AT (VERSION => n)` reads a mart as it was. A model keeps, as `_lake_snapshot`, the
  lake snapshot it read its upstream marts as of; the next build reads their changes since.
#}

{# The newest lake snapshot, read while the model compiles (its upstream marts are built). #}
{% macro lake_snapshot() -%}
    {%- if not execute -%}{{ return(0) }}{%- endif -%}
    {%- do lake_hold_commits() -%}
    {%- set result = run_query("select max(snapshot_id) from ducklake_snapshots('lake')") -%}
    {{ return(result.columns[0].values()[0] | int) }}
{%- endmacro %}

{# The lake snapshot this model last read its upstream marts as of, or none for a full
   build: not incremental, empty, that snapshot expired (`lakehouse maintain`), or one of
   `upstreams` (marts in the lake) replaced since (a full refresh, or a table model's
   rebuild: its change feed starts over). #}
{% macro lake_since(upstreams) -%}
    {%- if not execute or not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- do lake_hold_commits() -%}
    {%- if '_lake_snapshot' not in adapter.get_columns_in_relation(this) | map(attribute='name') -%}
        {%- do exceptions.raise_compiler_error(
            this ~ " was built by an older lakehouse: rebuild it once with "
            ~ "`lakehouse build --full-refresh --select " ~ this.identifier ~ "`") -%}
    {%- endif -%}
    {%- set since = lake_watermark('_lake_snapshot') -%}
    {%- if since is none -%}{{ return(none) }}{%- endif -%}
    {%- set names = ["('', '')"] -%}
    {%- for upstream in upstreams -%}
        {%- do names.append("('" ~ upstream.schema ~ "', '" ~ upstream.identifier ~ "')") -%}
    {%- endfor -%}
    {%- set check = run_query(
        "select (select count(*) from ducklake_snapshots('lake') where snapshot_id = " ~ since
        ~ "), (select count(*) from __ducklake_metadata_lake.ducklake_table t"
        ~ " join __ducklake_metadata_lake.ducklake_schema s on s.schema_id = t.schema_id"
        ~ " and s.end_snapshot is null where t.end_snapshot is null"
        ~ " and (s.schema_name, t.table_name) in (" ~ names | join(', ') ~ ")"
        ~ " and t.begin_snapshot > " ~ since ~ ")"
    ) -%}
    {%- set kept, replaced = check.rows[0][0], check.rows[0][1] -%}
    {{ return(since | int if kept == 1 and replaced == 0 else none) }}
{%- endmacro %}

{# How the mart `relation` changed between lake snapshots `since` and `now`, projected on
   `columns` (names or `expression as name`): each row it gained (sign 1) or lost (sign
   -1), as a multiset. A row a build
   rewrote with the same values (delete+insert) cancels out, and so does a row inserted and
   deleted again within the range (the change feed is netted per rowid: the first change of
   a rowid says what it was at `since`, its last what it is at `now`). #}
{% macro lake_diff(relation, since, now, columns) -%}
    {%- set listed = columns | join(', ') -%}
    (
    with feed as materialized (
        select
            {{ listed }},
            change_type in ('insert', 'update_postimage') as is_after,
            row_number() over (
                partition by rowid
                order by snapshot_id, change_type in ('insert', 'update_postimage')
            ) as nth,
            count(*) over (partition by rowid) as changes
        from ducklake_table_changes('lake', '{{ relation.schema }}', '{{ relation.identifier }}',
                                    {{ since + 1 }}, {{ now }})
    ),
    gained as (select * exclude (is_after, nth, changes) from feed where is_after and nth = changes),
    lost as (select * exclude (is_after, nth, changes) from feed where not is_after and nth = 1)
    select *, 1 as sign from (select * from gained except all select * from lost)
    union all
    select *, -1 as sign from (select * from lost except all select * from gained)
    )
{%- endmacro %}

{# The mart `relation` as it was at lake snapshot `since`. #}
{% macro lake_as_of(relation, since) -%}
    {{ relation }} at (version => {{ since }})
{%- endmacro %}

{# The last select of a model maintained by key (incremental_strategy='replace_keys'):
   the rows of `final`, stamped with the lake snapshot read; on an incremental build, plus
   a tombstone for each key of `changed` (every key held, when `since` is none) that has no
   row any more. #}
{% macro replace_keys_rows(keys, since, now, final='final', changed='changed') -%}
    {%- set key_list = keys if keys is string else keys | join(', ') -%}
    select *, {{ now }}::bigint as _lake_snapshot
        {%- if is_incremental() %}, false as _is_deleted{% endif %}
    from {{ final }}
    {%- if is_incremental() %}
    union all by name
    select {{ key_list }}, true as _is_deleted
    from (select distinct {{ key_list }} from {{ changed if since is not none else this }}) as gone
    anti join {{ final }} using ({{ key_list }})
    {%- endif %}
{%- endmacro %}

{# incremental_strategy='replace_keys': every key the new rows name is replaced, and a key
   with only a tombstone (_is_deleted) is removed. #}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set keys = [key] if key is string else key -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as held using {{ source }} as changed
    where {% for k in keys %}held.{{ k }} = changed.{{ k }}{{ ' and ' if not loop.last }}{% endfor %};
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }} where not _is_deleted;
{%- endmacro %}

{# The revenue order lines (distinct order and product) with a sign: on a full build every
   line, +1; on an incremental one only the orders whose lines changed after lake snapshot
   `since` (a new line, a line gone, the order cancelled or returned): their lines now (+1)
   and as they were (-1; now's, less what was gained, plus what was lost). Summing the sign
   per group keeps a count of orders additive. #}
{% macro revenue_lines(since=none, now=none) -%}
    {%- set lines = ref('fct_order_items') -%}
    {%- if since is none %}
    select distinct order_id, product_id, 1 as sign from {{ lines }} where is_revenue
    {%- else %}
    with diff as materialized (
        select * from {{ lake_diff(lines, since, now, ['order_id', 'product_id', 'is_revenue']) }}
    ),
    lines_now as materialized (
        select order_id, product_id, is_revenue from {{ lines }}
        where order_id in (select order_id from diff)
    ),
    lines_before as (
        (select * from lines_now
         except all
         select order_id, product_id, is_revenue from diff where sign = 1)
        union all
        select order_id, product_id, is_revenue from diff where sign = -1
    )
    select distinct order_id, product_id, 1 as sign from lines_now where is_revenue
    union all
    select distinct order_id, product_id, -1 as sign from lines_before where is_revenue
    {%- endif %}
{%- endmacro %}

{# Hooks of a model maintained by delta. DuckDB estimates a change feed at the size of its
   whole table, so it would build its hash joins on the table and probe with the (small)
   changes; on an incremental build the joins are built on the side written on the right,
   the small one (an empty one then skips the scan of the other side). #}
{% macro delta_hooks() -%}
    {{ return({
        'pre_hook': ["{{ \"set disabled_optimizers = 'build_side_probe_side'\" if is_incremental() }}"],
        'post_hook': ["reset disabled_optimizers"],
    }) }}
{%- endmacro %}

{# Before a model's first read of the lake while it compiles: its catalog transaction holds
   the lake's commit lock from here (lake/dbt_plugin.py; the model's post-hook releases it). #}
{% macro lake_hold_commits() -%}
    {%- do run_query("select lakehouse_hold_commits()") -%}
{%- endmacro %}
