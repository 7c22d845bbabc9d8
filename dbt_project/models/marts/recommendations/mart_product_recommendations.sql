-- Frequently bought together, one row per ordered product pair (A -> B):
-- support = orders with both / all orders, confidence = orders with both / orders with A,
-- lift = confidence / (orders with B / all orders). Pairs seen in at least 2 orders.
with

lines as (

    select distinct order_id, product_id
    from {{ ref('fct_order_items') }}
    where is_revenue

),

orders as (

    select count(distinct order_id) as total_orders from lines

),

product_orders as (

    select product_id, count(*) as orders_with_product from lines group by 1

),

pairs as (

    select a.product_id as product_id, b.product_id as recommended_product_id,
           count(*) as orders_with_both
    from lines a
    inner join lines b on a.order_id = b.order_id and a.product_id <> b.product_id
    group by 1, 2
    having count(*) >= 2

),

final as (

    select
        -- ids
        pairs.product_id,
        pairs.recommended_product_id,

        -- numbers
        pairs.orders_with_both,
        round(pairs.orders_with_both / orders.total_orders, 6) as support,
        round(pairs.orders_with_both / pa.orders_with_product, 6) as confidence,
        round(
            (pairs.orders_with_both / pa.orders_with_product)
            / (pb.orders_with_product / orders.total_orders), 6
        ) as lift

    from pairs
    cross join orders
    inner join product_orders pa on pairs.product_id = pa.product_id
    inner join product_orders pb on pairs.recommended_product_id = pb.product_id

)

select * from final
