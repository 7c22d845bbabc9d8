with

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

final as (

    select
        -- ids
        order_items.order_item_id,
        order_items.order_id,
        order_items.product_id,
        orders.customer_id,

        -- attributes
        orders.order_status,
        orders.order_status not in ('cancelled', 'returned') as is_revenue,

        -- numbers
        order_items.quantity,
        order_items.unit_price,
        order_items.discount_amount,
        order_items.quantity * order_items.unit_price as gross_amount,
        order_items.quantity * order_items.unit_price - order_items.discount_amount as net_amount,

        -- timestamps
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date

    from order_items
    inner join orders on order_items.order_id = orders.order_id

)

select * from final
