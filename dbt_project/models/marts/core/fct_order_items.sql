-- Incremental: rebuilds the lines of the orders that changed since the last build (new
-- lines, or a new version of their order); a full refresh gives the same table.
{{ config(materialized='incremental', unique_key='order_item_id', on_schema_change='append_new_columns') }}
{%- set lines_seen = lake_watermark('_snapshot_id') %}
{%- set orders_seen = lake_watermark('_order_snapshot_id') %}

with

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

changed_orders as (

    {{ changed_orders(orders_seen, lines_seen) }}

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
        cast(orders.ordered_at as date) as order_date,

        -- lineage (what the next incremental build starts from)
        order_items._ingested_at,
        order_items._snapshot_id,
        orders._snapshot_id as _order_snapshot_id

    from order_items
    inner join orders on order_items.order_id = orders.order_id
    {%- if is_incremental() %}
    where order_items.order_id in (select order_id from changed_orders)
    {%- endif %}

)

select * from final
