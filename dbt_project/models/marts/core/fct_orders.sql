with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

order_totals as (

    select
        order_id,
        count(*) as line_count,
        sum(quantity) as unit_count,
        sum(quantity * unit_price) as gross_amount,
        sum(discount_amount) as discount_amount
    from order_items
    group by order_id

),

final as (

    select
        -- ids
        orders.order_id,
        orders.customer_id,

        -- attributes
        orders.order_status,
        orders.currency,
        orders.order_status not in ('cancelled', 'returned') as is_revenue,

        -- numbers
        coalesce(order_totals.line_count, 0) as line_count,
        coalesce(order_totals.unit_count, 0) as unit_count,
        coalesce(order_totals.gross_amount, 0) as gross_amount,
        coalesce(order_totals.discount_amount, 0) as discount_amount,
        orders.shipping_amount,
        coalesce(order_totals.gross_amount, 0)
            - coalesce(order_totals.discount_amount, 0)
            + orders.shipping_amount as net_amount,

        -- timestamps
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date

    from orders
    left join order_totals on orders.order_id = order_totals.order_id

)

select * from final
