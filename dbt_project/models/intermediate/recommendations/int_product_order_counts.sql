-- Revenue orders per product, an additive count: a build adds the lines of the orders that
-- changed since the last one and takes away the lines those orders had before.
{{ config(materialized='incremental', unique_key='product_id', incremental_strategy='replace_keys') }}
{%- set since = lake_since([ref('fct_order_items')]) %}
{%- set now = lake_snapshot() %}

with

lines as (

    {{ revenue_lines(since, now) }}

),

delta as (

    select product_id, sum(sign) as orders_with_product
    from lines
    group by 1
    {%- if since is not none %}
    having sum(sign) <> 0
    {%- endif %}

),

changed as (

    select product_id from delta

),

counts as (

    select product_id, sum(orders_with_product) as orders_with_product
    from (
        select * from delta
        {%- if since is not none %}
        union all
        select product_id, orders_with_product from {{ this }} semi join delta using (product_id)
        {%- endif %}
    )
    group by 1

),

final as (

    select product_id, cast(orders_with_product as bigint) as orders_with_product
    from counts
    where orders_with_product > 0

)

{{ replace_keys_rows('product_id', since, now) }}
