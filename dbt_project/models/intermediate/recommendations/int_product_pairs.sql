-- Revenue orders per ordered product pair (A, B), and per product (the pair (A, A)): an
-- additive count. A build pairs again only the orders whose lines changed since the last
-- one: it adds their pairs as they are now and takes away their pairs as they were.
{{ config(
    materialized='incremental',
    unique_key=['product_id', 'recommended_product_id'],
    incremental_strategy='replace_keys',
    **delta_hooks(),
) }}
{%- set since = lake_since([ref('fct_order_items')]) %}
{%- set now = lake_snapshot() %}

with

lines as (

    {{ revenue_lines(since, now) }}

),

delta as (

    -- both lines from the same version of the order (now, or before the change); a line
    -- with itself counts the orders with the product
    select a.product_id, b.product_id as recommended_product_id, sum(a.sign) as orders_with_both
    from lines a
    inner join lines b
        on a.order_id = b.order_id and a.sign = b.sign
    group by 1, 2
    {%- if since is not none %}
    having sum(a.sign) <> 0
    {%- endif %}

),

changed as (

    select product_id, recommended_product_id from delta

),

counts as (

    select product_id, recommended_product_id, sum(orders_with_both) as orders_with_both
    from (
        select * from delta
        {%- if since is not none %}
        union all
        select held.product_id, held.recommended_product_id, held.orders_with_both
        from {{ this }} as held
        semi join delta using (product_id, recommended_product_id)
        {%- endif %}
    )
    group by 1, 2

),

final as (

    select product_id, recommended_product_id, cast(orders_with_both as bigint) as orders_with_both
    from counts
    where orders_with_both > 0

)

{{ replace_keys_rows(['product_id', 'recommended_product_id'], since, now) }}
