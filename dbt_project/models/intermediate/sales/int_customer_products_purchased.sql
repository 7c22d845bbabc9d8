-- Which customer has bought which product (any non-cancelled order): the fact the
-- "never bought what they review" fraud rule needs.
with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

final as (

    select
        orders.customer_id,
        order_items.product_id,
        min(orders.ordered_at) as first_bought_at
    from order_items
    inner join orders on order_items.order_id = orders.order_id
    where orders.order_status <> 'cancelled'
    group by 1, 2

)

select * from final
