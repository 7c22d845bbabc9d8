-- Which customer has bought which product (any order not cancelled): the fact the
-- "never bought what they review" fraud rule needs, from the order lines already joined in
-- fct_order_items. Incremental: only the (customer, product) pairs whose lines changed
-- since the last build are touched. A pair that gained lines keeps the earlier of its
-- first purchase and theirs; a pair that lost a line it counted (the order cancelled, or
-- the line gone) is recomputed from all its lines.
{{ config(
    materialized='incremental',
    unique_key=['customer_id', 'product_id'],
    incremental_strategy='replace_keys',
    **delta_hooks(),
) }}
{%- set since = lake_since([ref('fct_order_items')]) %}
{%- set now = lake_snapshot() %}

with

order_items as (

    select * from {{ ref('fct_order_items') }}

),

{%- if since is none %}

final as (

    select
        customer_id,
        product_id,
        min(ordered_at) as first_bought_at
    from order_items
    where order_status <> 'cancelled'
    group by 1, 2

)

{%- else %}

diff as materialized (

    select * from {{ lake_diff(ref('fct_order_items'), since, now,
                               ['customer_id', 'product_id',
                                "order_status = 'cancelled' as is_cancelled", 'ordered_at']) }}

),

changed as (

    select distinct customer_id, product_id from diff

),

recount as (

    select distinct customer_id, product_id from diff where sign = -1 and not is_cancelled

),

final as (

    select customer_id, product_id, min(first_bought_at) as first_bought_at
    from (
        select customer_id, product_id, ordered_at as first_bought_at
        from order_items
        semi join recount using (customer_id, product_id)
        where order_status <> 'cancelled'
        union all
        select customer_id, product_id, first_bought_at
        from {{ this }}
        semi join changed using (customer_id, product_id)
        anti join recount using (customer_id, product_id)
        union all
        select customer_id, product_id, ordered_at
        from diff
        anti join recount using (customer_id, product_id)
        where sign = 1 and not is_cancelled
    )
    group by 1, 2

)

{%- endif %}

{{ replace_keys_rows(['customer_id', 'product_id'], since, now) }}
