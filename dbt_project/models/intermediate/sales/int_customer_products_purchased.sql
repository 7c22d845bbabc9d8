-- Which customer has bought which product (any order not cancelled): the fact the
-- "never bought what they review" fraud rule needs. A table, from the order lines already
-- joined in fct_order_items, so the rule and its test do not each join 24M lines again.
{{ config(materialized='table') }}

with

order_items as (

    select * from {{ ref('fct_order_items') }}

),

final as (

    select
        customer_id,
        product_id,
        min(ordered_at) as first_bought_at
    from order_items
    where order_status <> 'cancelled'
    group by 1, 2

)

select * from final
