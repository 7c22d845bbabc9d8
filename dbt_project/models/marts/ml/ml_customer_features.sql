-- One row per customer: recency, frequency and monetary value, review behaviour and
-- fraud history, as features for a model.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

reviews as (

    select * from {{ ref('fct_reviews') }}

),

as_of as (

    select max(ordered_at) as as_of_at from orders

),

order_features as (

    select
        customer_id,
        count(*) filter (where is_revenue) as frequency,
        coalesce(sum(net_amount) filter (where is_revenue), 0) as monetary_value,
        count(*) filter (where order_status = 'returned') as returned_orders,
        max(ordered_at) filter (where is_revenue) as last_ordered_at
    from orders
    group by 1

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
        date_diff('day', order_features.last_ordered_at, as_of.as_of_at) as recency_days,
        coalesce(order_features.frequency, 0) as frequency,
        coalesce(order_features.monetary_value, 0) as monetary_value,
        coalesce(order_features.returned_orders, 0) as returned_orders,
        coalesce(review_features.reviews, 0) as reviews,
        round(review_features.average_rating, 2) as average_rating,
        coalesce(review_features.suspected_fraud_reviews, 0) as suspected_fraud_reviews,
        coalesce(review_features.max_fraud_score, 0) as max_fraud_score,
        date_diff('day', customers.created_at, as_of.as_of_at) as account_age_days

    from customers
    cross join as_of
    left join order_features on customers.customer_id = order_features.customer_id
    left join review_features on customers.customer_id = review_features.customer_id

)

select * from final
