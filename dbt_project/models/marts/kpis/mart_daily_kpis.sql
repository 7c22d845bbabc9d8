-- The dashboard's table: one row per day.
-- Incremental: a build recomputes only the days touched since the last one: the days of
-- the orders that changed what is counted here (as they were and as they are), the days
-- on which customers' first revenue orders were or are (a customer is new on that day),
-- and the days whose review numbers moved (reviews are few: they are summed per day in
-- full and compared with the rows held).
{{ config(
    materialized='incremental',
    unique_key='kpi_date',
    incremental_strategy='replace_keys',
    **delta_hooks(),
) }}
{%- set since = lake_since([ref('fct_orders'), ref('dim_customers')]) %}
{%- set now = lake_snapshot() %}

with

reviews as (

    select * from {{ ref('fct_reviews') }}

),

daily_reviews as (

    select
        review_date as kpi_date,
        count(*) as reviews,
        round(avg(rating), 2) as average_rating,
        round(avg(is_suspected_fraud::int), 4) as fraud_rate
    from reviews
    group by 1

),

{%- if since is not none %}

order_changes as (

    select order_date
    from {{ lake_diff(ref('fct_orders'), since, now,
                      ['customer_id', 'order_date', 'is_revenue', 'net_amount']) }}

),

first_order_dates as (

    select cast(first_revenue_ordered_at as date) as first_order_date
    from {{ lake_diff(ref('dim_customers'), since, now,
                      ['customer_id', 'first_revenue_ordered_at']) }}

),

review_days as (

    select kpi_date from (
        select kpi_date, reviews, average_rating, fraud_rate from daily_reviews
        except
        select kpi_date, reviews, average_rating, fraud_rate from {{ this }} where reviews > 0
    )
    union
    select kpi_date from (
        select kpi_date, reviews, average_rating, fraud_rate from {{ this }} where reviews > 0
        except
        select kpi_date, reviews, average_rating, fraud_rate from daily_reviews
    )

),

changed as (

    select order_date as kpi_date from order_changes
    union
    select first_order_date from first_order_dates
    union
    select kpi_date from review_days

),

{%- endif %}

orders as (

    select * from {{ ref('fct_orders') }}
    {%- if since is not none %}
    where order_date in (select kpi_date from changed)
    {%- endif %}

),

first_orders as (

    select customer_id, cast(first_revenue_ordered_at as date) as first_order_date
    from {{ ref('dim_customers') }}
    where first_revenue_ordered_at is not null
    {%- if since is not none %}
        and customer_id in (select customer_id from orders)
    {%- endif %}

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
        daily_reviews.average_rating,
        daily_reviews.fraud_rate
    from daily_orders
    full outer join (
        select * from daily_reviews
        {%- if since is not none %}
        where kpi_date in (select kpi_date from changed)
        {%- endif %}
    ) as daily_reviews on daily_orders.kpi_date = daily_reviews.kpi_date

)

{{ replace_keys_rows('kpi_date', since, now) }}
