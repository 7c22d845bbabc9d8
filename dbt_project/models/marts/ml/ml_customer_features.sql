-- One row per customer: recency, frequency and monetary value, review behaviour and
-- fraud history, as features for a model.
-- Not incremental: recency and account age are counted to the newest order overall, which
-- moves with every new order, so every row changes; a build is one pass over dim_customers
-- (one row per customer) and the reviews, never over the orders.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

reviews as (

    select * from {{ ref('fct_reviews') }}

),

as_of as (

    -- features are as of the newest order in the data
    select max(last_ordered_at) as as_of_at from customers

),

review_features as (

    select
        customer_id,
        count(*) as reviews,
        avg(rating) as average_rating,
        count(*) filter (where is_suspected_fraud) as suspected_fraud_reviews,
        max(fraud_score) as max_fraud_score
    from reviews
    group by 1

),

final as (

    select
        -- ids
        customers.customer_id,

        -- numbers
        -- days between UTC timestamps (the session's time zone; without it DuckDB counts
        -- days through its calendar library, 3x slower)
        date_diff('day', cast(customers.last_revenue_ordered_at as timestamp),
                  cast(as_of.as_of_at as timestamp)) as recency_days,
        customers.revenue_order_count as frequency,
        customers.lifetime_value as monetary_value,
        customers.returned_order_count as returned_orders,
        coalesce(review_features.reviews, 0) as reviews,
        round(review_features.average_rating, 2) as average_rating,
        coalesce(review_features.suspected_fraud_reviews, 0) as suspected_fraud_reviews,
        coalesce(review_features.max_fraud_score, 0) as max_fraud_score,
        date_diff('day', cast(customers.created_at as timestamp),
                  cast(as_of.as_of_at as timestamp)) as account_age_days

    from customers
    cross join as_of
    left join review_features on customers.customer_id = review_features.customer_id

)

select * from final
