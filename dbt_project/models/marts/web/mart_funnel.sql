-- One row per day and funnel step: sessions that reached the step, and conversion from
-- the first step (view) and from the step before.
with

events as (

    select * from {{ ref('stg_web__clickstream') }}

),

steps as (

    select * from (values (1, 'view'), (2, 'cart'), (3, 'checkout'), (4, 'purchase'))
        as t (step_number, event_name)

),

sessions as (

    -- a session belongs to the day it started; it reached every step it logged
    select
        session_id,
        min(cast(event_at as date)) over (partition by session_id) as session_date,
        event_name
    from events

),

reached as (

    select
        sessions.session_date,
        steps.step_number,
        steps.event_name as step,
        count(distinct sessions.session_id) as sessions
    from sessions
    inner join steps on sessions.event_name = steps.event_name
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
        ), 4) as conversion_from_previous
    from reached

)

select * from final
