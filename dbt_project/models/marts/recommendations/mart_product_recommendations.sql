-- Frequently bought together, one row per ordered product pair (A -> B):
-- support = orders with both / all orders, confidence = orders with both / orders with A,
-- lift = confidence / (orders with B / all orders). Pairs seen in at least 2 orders.
-- Not incremental: every row's support and lift divide by the total of orders, which moves
-- with every new order. The counts it divides, the orders per pair of products
-- and the orders per product are kept by delta (int_product_pairs), so a build is one pass
-- over the pairs, not a self-join of every order line.
with

pairs as (

    select * from {{ ref('int_product_pairs') }}
    where product_id <> recommended_product_id and orders_with_both >= 2

),

product_orders as (

    select product_id, orders_with_both as orders_with_product
    from {{ ref('int_product_pairs') }}
    where product_id = recommended_product_id

),

orders as (

    -- revenue orders with at least one line
    select count(*) as total_orders from {{ ref('fct_orders') }}
    where is_revenue and line_count > 0

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
