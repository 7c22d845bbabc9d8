with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

customer_orders as (

    select
        customer_id,
        count(*) as order_count,
        count(*) filter (where is_revenue) as revenue_order_count,
        count(*) filter (where order_status = 'returned') as returned_order_count,
        sum(net_amount) filter (where is_revenue) as lifetime_value,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,
        max(ordered_at) filter (where is_revenue) as last_revenue_ordered_at
    from orders
    group by customer_id

),

final as (

    select
        -- ids
        customers.customer_id,

        -- attributes
        customers.email,
        customers.first_name,
        customers.last_name,
        customers.country_code,

        -- numbers
        coalesce(customer_orders.order_count, 0) as order_count,
        coalesce(customer_orders.revenue_order_count, 0) as revenue_order_count,
        coalesce(customer_orders.returned_order_count, 0) as returned_order_count,
        coalesce(customer_orders.lifetime_value, 0) as lifetime_value,

        -- timestamps
        customers.created_at,
        customer_orders.first_ordered_at,
        customer_orders.last_ordered_at,
        customer_orders.last_revenue_ordered_at

    from customers
    left join customer_orders on customers.customer_id = customer_orders.customer_id

)

select * from final
