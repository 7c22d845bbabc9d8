{#
  Change logs (sources with `cdc: true`): one row per change, in log order (_lsn, _seq).
  _op is snapshot, insert, update, delete or truncate; an update leaves out the TOASTed
  values it did not change (listed in _unchanged): the key's previous change holds them.
  The latest snapshot or truncate resets the table. The same rules as ingest/cdc/current.py.
#}

{# The table's own columns in a change log (not its log or lineage columns). #}
{% macro cdc_columns(relation) -%}
    {%- set meta = ['_op', '_lsn', '_seq', '_xid', '_commit_ts', '_unchanged', '_before',
                    '_load_id', '_source_file', '_ingested_at'] -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name not in meta -%}{%- do names.append(column.name) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{# The value of `column` as of each change: the change's own, or the latest one before it
   that sent it (an update that left a TOASTed value out; a delete, which sends the key). #}
{% macro _cdc_sent(column) -%}
    case when _op <> 'delete' and not list_contains(_unchanged, '{{ column }}')
         then {'v': "{{ column }}"} end
{%- endmacro %}

{% macro _cdc_live(relation) -%}
    with reset as (
        select coalesce(max((_lsn, case when _op = 'snapshot' then -1 else _seq end))
                        filter (where _op in ('snapshot', 'truncate')), (-1, -1)) as at
        from {{ relation }}
    )
    select l.*, l.snapshot_id as _snapshot_id from {{ relation }} as l, reset
    where (_lsn, _seq) > reset.at and _op <> 'truncate'
{%- endmacro %}

{# Current state: one row per live key (deleted keys gone), each column from the key's
   latest change that sent it; plus _lsn, _commit_ts, _load_id, _ingested_at and
   _snapshot_id of its last change.

   In an incremental model (materialized='incremental', unique_key=key,
   incremental_strategy='delete+insert', post_hook="delete from {{ this }} where
   _is_deleted"), pass incremental=true: a build reads only the changes committed since
   the last one, merged with the rows it holds for the keys they touch; deleted keys come
   out as tombstones (_is_deleted) for the post-hook to remove. New changes that include
   a snapshot or a truncate (a reset) rebuild it from the log. #}
{% macro cdc_current(relation, key, incremental=false) -%}
    {%- set keys = key if key is not string else [key] -%}
    {%- set key_list = '"' ~ keys | join('", "') ~ '"' -%}
    {%- set columns = cdc_columns(relation) -%}
    {%- set watermark = lake_watermark() if incremental else none -%}
    {%- set reset = false -%}
    {%- if watermark is not none -%}
        {%- set found = run_query(
            "select count(*) from " ~ relation ~ " where snapshot_id > " ~ watermark
            ~ " and _op in ('snapshot', 'truncate')") -%}
        {%- set reset = found.columns[0].values()[0] > 0 -%}
    {%- endif -%}
    {%- set since = watermark if not reset else none -%}
    with changes as (
        select *, snapshot_id from {{ relation }} where {{ landed_after(since) }}
        {%- if since is not none %}
        union all by name
        -- the state held for the keys these changes touch, as their first change
        select {{ key_list }},
            {%- for c in columns if c not in keys %} "{{ c }}",{% endfor %}
            'held' as _op, _lsn, -1 as _seq, []::varchar[] as _unchanged, _commit_ts,
            _load_id, _ingested_at, _snapshot_id as snapshot_id
        from {{ this }}
        where ({{ key_list }}) in (
            select ({{ key_list }}) from {{ relation }} where {{ landed_after(since) }})
        {%- endif %}
    ),
    live as ({{ _cdc_live('changes') }}),
    current as (
        select
            {{ key_list }},
            {%- for c in columns if c not in keys %}
            arg_max({'v': "{{ c }}"}, (_lsn, _seq)) filter (
                where _op <> 'delete' and not list_contains(_unchanged, '{{ c }}')).v
                as "{{ c }}",
            {%- endfor %}
            max(_lsn) as _lsn,
            arg_max(_commit_ts, (_lsn, _seq)) as _commit_ts,
            arg_max(_load_id, (_lsn, _seq)) as _load_id,
            arg_max(_ingested_at, (_lsn, _seq)) as _ingested_at,
            max(_snapshot_id) as _snapshot_id,
            arg_max(_op, (_lsn, _seq)) = 'delete' as _is_deleted
        from live
        group by {{ key_list }}
    )
    {%- if incremental %}
    select * from current
    {%- if reset and watermark is not none %}
    union all by name
    -- a reset: every key held that the log no longer has goes
    select {{ key_list }}, true as _is_deleted, {{ watermark }}::bigint as _snapshot_id
    from {{ this }} where ({{ key_list }}) not in (select ({{ key_list }}) from current)
    {%- endif %}
    {%- else %}
    select * exclude (_is_deleted) from current where not _is_deleted
    {%- endif %}
{%- endmacro %}

{# Every change as a version of its key, with the values it had then (TOASTed values and
   deletes carried from the version before): _op, _is_deleted, _lsn, _seq, _commit_ts,
   and the lineage columns. The input of SCD type 2 histories. #}
{% macro cdc_versions(relation, key) -%}
    {%- set keys = key if key is not string else [key] -%}
    {%- set columns = cdc_columns(relation) -%}
    select
        {%- for k in keys %}
        "{{ k }}",
        {%- endfor %}
        {%- for c in columns if c not in keys %}
        (last_value({{ _cdc_sent(c) }} ignore nulls) over versions).v as "{{ c }}",
        {%- endfor %}
        _op,
        _op = 'delete' as _is_deleted,
        _lsn,
        _seq,
        _commit_ts,
        _load_id,
        _ingested_at,
        snapshot_id as _snapshot_id
    from {{ relation }}
    where _op <> 'truncate'
    window versions as (
        partition by {% for k in keys %}"{{ k }}"{{ ", " if not loop.last }}{% endfor %}
        order by _lsn, _seq rows between unbounded preceding and current row
    )
{%- endmacro %}
