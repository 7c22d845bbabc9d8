-- Which customer has bought which product (any order not cancelled): the fact the
-- "never bought what they review" fraud rule needs, from the order lines already joined in
-- fct_order_items. Incremental: a build recomputes only the (customer, product) pairs of
-- the lines whose customer, product, cancellation or time changed since the last one.
{{ config(
    materialized='incremental',
    unique_key=['customer_id', 'product_id'],
    incremental_strategy='replace_keys',
) }}
{%- set since = lake_since([ref('fct_order_items')]) %}
{%- set now = lake_snapshot() %}

with

order_items as (

    select * from {{ ref('fct_order_items') }}

),

{%- if since is not none %}

changed as (

    select distinct customer_id, product_id
    from {{ lake_diff(ref('fct_order_items'), since, now,
                      ['customer_id', 'product_id', "order_status = 'cancelled' as is_cancelled",
                       'ordered_at']) }}

),

{%- endif %}

final as (

    select
        customer_id,
        product_id,
        min(ordered_at) as first_bought_at
    from order_items
    {%- if since is not none %}
    semi join changed using (customer_id, product_id)
    {%- endif %}
    where order_status <> 'cancelled'
    group by 1, 2

)

{{ replace_keys_rows(['customer_id', 'product_id'], since, now) }}
