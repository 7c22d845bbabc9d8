-- Incremental: a build recomputes only the customers that changed since the last one (a
-- new version of the customer, a deletion, or a change to an order of theirs that this
-- table sums, as the order was and as it is); a full refresh gives the same table.
{{ config(
    materialized='incremental',
    unique_key='customer_id',
    incremental_strategy='replace_keys',
    **delta_hooks(),
) }}
{%- set since = lake_since([ref('fct_orders')]) %}
{%- set customers_seen = lake_watermark('_snapshot_id') if since is not none else none %}
{%- set now = lake_snapshot() %}

with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

{%- if since is not none %}

changed as (

    -- a new version of the customer
    select customer_id from customers where {{ landed_after(customers_seen, '_snapshot_id') }}
    union
    -- an order of theirs changed what is summed here (its old version names the
    -- customer it had; a shipment changes nothing here)
    select customer_id
    from {{ lake_diff(ref('fct_orders'), since, now,
                      ['customer_id', 'is_revenue', "order_status = 'returned' as is_returned",
                       'net_amount', 'ordered_at']) }}
    union
    -- deleted at the source
    select customer_id from {{ this }} anti join customers using (customer_id)

),

{%- endif %}

orders as (

    select * from {{ ref('fct_orders') }}
    {%- if since is not none %}
    where customer_id in (select customer_id from changed)
    {%- endif %}

),

customer_orders as (

    select
        customer_id,
        count(*) as order_count,
        count(*) filter (where is_revenue) as revenue_order_count,
        count(*) filter (where order_status = 'returned') as returned_order_count,
        sum(net_amount) filter (where is_revenue) as lifetime_value,
        min(ordered_at) as first_ordered_at,
        min(ordered_at) filter (where is_revenue) as first_revenue_ordered_at,
        max(ordered_at) as last_ordered_at,
        max(ordered_at) filter (where is_revenue) as last_revenue_ordered_at
    from orders
    group by customer_id

),

final as (

    select
        -- ids
        customers.customer_id,

        -- attributes
        customers.email,
        customers.first_name,
        customers.last_name,
        customers.country_code,

        -- numbers
        coalesce(customer_orders.order_count, 0) as order_count,
        coalesce(customer_orders.revenue_order_count, 0) as revenue_order_count,
        coalesce(customer_orders.returned_order_count, 0) as returned_order_count,
        coalesce(customer_orders.lifetime_value, 0) as lifetime_value,

        -- timestamps
        customers.created_at,
        customer_orders.first_ordered_at,
        customer_orders.first_revenue_ordered_at,
        customer_orders.last_ordered_at,
        customer_orders.last_revenue_ordered_at,

        -- lineage (where the next incremental build starts from)
        customers._snapshot_id

    from customers
    left join customer_orders on customers.customer_id = customer_orders.customer_id
    {%- if since is not none %}
    where customers.customer_id in (select customer_id from changed)
    {%- endif %}

)

{{ replace_keys_rows('customer_id', since, now) }}
