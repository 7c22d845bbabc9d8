-- One row per day and funnel step: sessions that reached the step, and conversion from
-- the first step (view) and from the step before.
-- Incremental: a build recomputes only the days on which the sessions with new events
-- start now, or started before (a late event can move a session to an earlier day); each
-- such day from every session that starts on it.
{{ config(
    materialized='incremental',
    unique_key=['session_date', 'step_number'],
    incremental_strategy='replace_keys',
    **delta_hooks(),
) }}
{%- set since = lake_since([]) %}
{%- set events_seen = lake_watermark('_snapshot_id') if since is not none else none %}
{%- set now = lake_snapshot() %}

with

events as (

    select * from {{ ref('stg_web__clickstream') }}

),

steps as (

    select * from (values (1, 'view'), (2, 'cart'), (3, 'checkout'), (4, 'purchase'))
        as t (step_number, event_name)

),

{%- if since is not none %}

touched as (

    -- every raw event of the sessions with new events (every version: the one staging
    -- replaced may be the one that set the day), as staging cleans them
    select
        trim(session_id) as session_id,
        cast(timezone('UTC', cast(ts as timestamp)) as date) as event_date,
        snapshot_id
    from {{ source('web', 'clickstream') }}
    where trim(session_id) in (
        select trim(session_id) from {{ source('web', 'clickstream') }}
        where snapshot_id > {{ events_seen }}
    )

),

changed as (

    -- the day each of them starts on now, and the day it started on before
    select min(event_date) as session_date from touched group by session_id
    union
    select min(event_date) from touched where snapshot_id <= {{ events_seen }}
    group by session_id

),

changed_steps as (

    select session_date, step_number from changed cross join steps

),

{%- endif %}

sessions as (

    -- a session belongs to the day it started; it reached every step it logged
    select
        session_id,
        min(cast(event_at as date)) over (partition by session_id) as session_date,
        event_name,
        max(_snapshot_id) over (partition by session_id) as _snapshot_id
    from events
    {%- if since is not none %}
    where session_id in (
        select session_id from events
        where cast(event_at as date) in (select session_date from changed)
    )
    {%- endif %}

),

reached as (

    select
        sessions.session_date,
        steps.step_number,
        steps.event_name as step,
        count(distinct sessions.session_id) as sessions,
        max(sessions._snapshot_id) as _snapshot_id
    from sessions
    inner join steps on sessions.event_name = steps.event_name
    {%- if since is not none %}
    where sessions.session_date in (select session_date from changed)
    {%- endif %}
    group by 1, 2, 3

),

final as (

    select
        session_date,
        step_number,
        step,
        sessions,
        round(sessions / first_value(sessions) over (
            partition by session_date order by step_number
        ), 4) as conversion_from_view,
        round(sessions / lag(sessions) over (
            partition by session_date order by step_number
        ), 4) as conversion_from_previous,

        -- lineage (where the next incremental build starts from)
        _snapshot_id
    from reached

)

{{ replace_keys_rows(['session_date', 'step_number'], since, now, changed='changed_steps') }}
