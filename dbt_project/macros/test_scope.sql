{#
  Data tests scoped to what a build changed. When a `dbt build` starts, this records what
  each incremental model held: for a mart in the lake the lake snapshot (rows written later
  have a newer DuckLake `snapshot_id`), for a table in the build database the newest
  `_lake_snapshot` or `_snapshot_id` it held (raw rows past it are what its next build
  reads). A generic test of such a model then checks only the rows that share a key
  (unique_key) with a row written since: the new rows, and any old row a new key
  duplicates. The raw sources a staging model reads past its watermark are scoped the
  same way, to the batches landed since. A full refresh, `dbt test`, and
  `lakehouse check --full` (var full_tests) check every row.
#}

{% macro record_test_scopes() -%}
    {%- set scopes = target.database ~ '.main.lakehouse_test_scopes' -%}
    {%- set rows = [] -%}
    {%- if execute and flags.WHICH in ('build', 'run') and not flags.FULL_REFRESH -%}
        {%- set now = lake_snapshot() -%}
        {%- for node in graph.nodes.values()
              if node.resource_type == 'model' and node.config.materialized == 'incremental' -%}
            {%- set relation = adapter.get_relation(node.database, node.schema, node.alias) -%}
            {%- if relation is not none -%}
                {%- set names = adapter.get_columns_in_relation(relation)
                                | map(attribute='name') | list -%}
                {%- set column = ('snapshot_id' if relation.database == 'lake'
                                  else '_lake_snapshot' if '_lake_snapshot' in names
                                  else '_snapshot_id' if '_snapshot_id' in names else none) -%}
                {%- if column == 'snapshot_id' -%}
                    {%- set since = now -%}
                {%- elif column -%}
                    {%- set since = run_query('select max(' ~ column ~ ') from ' ~ relation)
                                    .columns[0].values()[0] -%}
                {%- endif -%}
                {%- if column and since is not none -%}
                    {%- set key = node.config.unique_key -%}
                    {%- set keys = ([key] if key is string else key or []) | join(', ') -%}
                    {%- do rows.append((relation, column, since, keys)) -%}
                    {%- if column == '_snapshot_id' -%}
                        {#- the raw batches it reads past the same watermark -#}
                        {%- for raw in graph.sources.values()
                              if [raw.source_name, raw.name] in node.sources -%}
                            {%- do rows.append((api.Relation.create(raw.database, raw.schema,
                                raw.identifier), 'snapshot_id', since, '')) -%}
                        {%- endfor -%}
                    {%- endif -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {#- in the transaction the queries above opened, committed here (dbt would roll it back) -#}
    {%- if execute -%}
        {%- do run_query('create or replace table ' ~ scopes ~ ' (invocation_id varchar, '
                         ~ 'relation varchar, scope_column varchar, since bigint, keys varchar)') -%}
        {%- for relation, column, since, keys in rows -%}
            {%- do run_query('insert into ' ~ scopes ~ " values ('" ~ invocation_id ~ "', '"
                             ~ (relation | string | replace("'", "''")) ~ "', '" ~ column ~ "', "
                             ~ (since | int) ~ ", '" ~ keys ~ "')") -%}
        {%- endfor -%}
        {%- do adapter.commit() -%}
    {%- endif -%}
{%- endmacro %}

{# What a test of `relation` checks in this invocation: a predicate, or none (every row). #}
{% macro test_scope(relation) -%}
    {%- if not execute or var('full_tests', false) -%}{{ return(none) }}{%- endif -%}
    {%- set found = run_query(
        "select scope_column, min(since), max(keys) from " ~ target.database
        ~ ".main.lakehouse_test_scopes where invocation_id = '" ~ invocation_id
        ~ "' and relation = '" ~ (relation | string | replace("'", "''")) ~ "' group by 1"
    ) -%}
    {%- if found.rows | length != 1 -%}{{ return(none) }}{%- endif -%}
    {%- set column, since, keys = found.rows[0] -%}
    {%- set newer = column ~ ' > ' ~ (since | int) -%}
    {%- if keys -%}
        {{ return('(' ~ keys ~ ') in (select ' ~ keys ~ ' from ' ~ relation ~ ' where '
                  ~ newer ~ ')') }}
    {%- endif -%}
    {{ return(newer) }}
{%- endmacro %}

{# dbt's own, plus the scope above. #}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set filters = ['(' ~ where ~ ')'] if where else [] -%}
    {%- set scope = test_scope(relation) -%}
    {%- if scope -%}{%- do filters.append(scope) -%}{%- endif -%}
    {%- if filters -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ filters | join(' and ')
                      ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}
