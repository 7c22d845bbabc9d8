-- The dashboard's table: one row per day.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

reviews as (

    select * from {{ ref('fct_reviews') }}

),

first_orders as (

    select customer_id, min(order_date) as first_order_date
    from orders
    where is_revenue
    group by 1

),

daily_orders as (

    select
        orders.order_date as kpi_date,
        count(*) as orders,
        sum(orders.net_amount) as revenue,
        count(distinct orders.customer_id) filter (
            where orders.order_date = first_orders.first_order_date
        ) as new_customers,
        count(distinct orders.customer_id) filter (
            where orders.order_date > first_orders.first_order_date
        ) as returning_customers
    from orders
    left join first_orders on orders.customer_id = first_orders.customer_id
    where orders.is_revenue
    group by 1

),

daily_reviews as (

    select
        review_date as kpi_date,
        count(*) as reviews,
        avg(rating) as average_rating,
        avg(is_suspected_fraud::int) as fraud_rate
    from reviews
    group by 1

),

final as (

    select
        coalesce(daily_orders.kpi_date, daily_reviews.kpi_date) as kpi_date,
        coalesce(daily_orders.orders, 0) as orders,
        coalesce(daily_orders.revenue, 0) as revenue,
        case when daily_orders.orders > 0
            then round(daily_orders.revenue / daily_orders.orders, 2) end as average_order_value,
        coalesce(daily_orders.new_customers, 0) as new_customers,
        coalesce(daily_orders.returning_customers, 0) as returning_customers,
        coalesce(daily_reviews.reviews, 0) as reviews,
        round(daily_reviews.average_rating, 2) as average_rating,
        round(daily_reviews.fraud_rate, 4) as fraud_rate
    from daily_orders
    full outer join daily_reviews on daily_orders.kpi_date = daily_reviews.kpi_date

)

select * from final
