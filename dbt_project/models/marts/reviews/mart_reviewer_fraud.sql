-- One row per reviewer: how many of their reviews look like fraud, their worst score and
-- every reason, what a fraud dashboard lists (worst first) without scanning every review.
-- Rebuilt whole: one pass over four columns of fct_reviews, one row per reviewer.
{{ config(materialized='table', tags=['real_time']) }}

with

reviews as (

    select * from {{ ref('fct_reviews') }}

),

per_reviewer as (

    select
        customer_id,
        count(*) as reviews,
        count(*) filter (where is_suspected_fraud) as suspected_reviews,
        max(fraud_score) as max_fraud_score,
        list_sort(list_distinct(flatten(list(fraud_reasons)))) as fraud_reasons,
        max(reviewed_at) as last_reviewed_at

    from reviews
    where customer_id is not null
    group by customer_id

)

select * from per_reviewer
