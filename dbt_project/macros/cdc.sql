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
   latest change that sent it; plus _lsn, _commit_ts and _snapshot_id of its last change. #}
{% macro cdc_current(relation, key) -%}
    {%- set keys = key if key is not string else [key] -%}
    {%- set columns = cdc_columns(relation) -%}
    select
        {%- for k in keys %}
        "{{ k }}",
        {%- endfor %}
        {%- for c in columns if c not in keys %}
        arg_max({'v': "{{ c }}"}, (_lsn, _seq)) filter (
            where _op <> 'delete' and not list_contains(_unchanged, '{{ c }}')).v as "{{ c }}",
        {%- endfor %}
        max(_lsn) as _lsn,
        arg_max(_commit_ts, (_lsn, _seq)) as _commit_ts,
        max(_snapshot_id) as _snapshot_id
    from ({{ _cdc_live(relation) }}) as live
    group by {% for k in keys %}"{{ k }}"{{ ", " if not loop.last }}{% endfor %}
    having arg_max(_op, (_lsn, _seq)) <> 'delete'
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
