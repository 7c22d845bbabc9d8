-- Incremental: rebuilds the orders that changed since the last build (a new version of
-- the order, or new lines); a full refresh gives the same table.
{{ config(materialized='incremental', unique_key='order_id', on_schema_change='append_new_columns') }}
{%- set orders_seen = lake_watermark('_snapshot_id') %}
{%- set lines_seen = lake_watermark('_lines_snapshot_id') %}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

order_items as (

    select * from {{ ref('stg_shop__order_items') }}

),

status_history as (

    select * from {{ ref('fct_order_status_history') }}

),

changed_orders as (

    {{ changed_orders(orders_seen, lines_seen) }}

),

order_totals as (

    select
        order_id,
        count(*) as line_count,
        sum(quantity) as unit_count,
        sum(quantity * unit_price) as gross_amount,
        sum(discount_amount) as discount_amount,
        max(_snapshot_id) as _lines_snapshot_id
    from order_items
    {%- if is_incremental() %}
    where order_id in (select order_id from changed_orders)
    {%- endif %}
    group by order_id

),

status_changes as (

    select order_id, count(*) as status_count
    from status_history
    {%- if is_incremental() %}
    where order_id in (select order_id from changed_orders)
    {%- endif %}
    group by order_id

),

final as (

    select
        -- ids
        orders.order_id,
        orders.customer_id,

        -- attributes
        orders.order_status,
        orders.currency,
        orders.order_status not in ('cancelled', 'returned') as is_revenue,

        -- numbers
        coalesce(order_totals.line_count, 0) as line_count,
        coalesce(order_totals.unit_count, 0) as unit_count,
        coalesce(order_totals.gross_amount, 0) as gross_amount,
        coalesce(order_totals.discount_amount, 0) as discount_amount,
        orders.shipping_amount,
        coalesce(order_totals.gross_amount, 0)
            - coalesce(order_totals.discount_amount, 0)
            + orders.shipping_amount as net_amount,
        coalesce(status_changes.status_count, 1) as statuses_seen,

        -- timestamps and delivery times
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.shipped_at,
        orders.delivered_at,
        round(date_diff('minute', orders.ordered_at, orders.shipped_at) / 60, 1) as hours_to_ship,
        round(date_diff('minute', orders.ordered_at, orders.delivered_at) / 1440, 2)
            as days_to_deliver,

        -- lineage (what the next incremental build starts from)
        orders._ingested_at,
        orders._snapshot_id,
        order_totals._lines_snapshot_id

    from orders
    left join order_totals on orders.order_id = order_totals.order_id
    left join status_changes on orders.order_id = status_changes.order_id
    {%- if is_incremental() %}
    where orders.order_id in (select order_id from changed_orders)
    {%- endif %}

)

select * from final
