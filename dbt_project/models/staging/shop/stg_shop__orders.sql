-- Incremental: each build reads only the rows committed since the last one, and keeps the
-- latest version of each order among those rows and the version already held.
{{ config(materialized='incremental', unique_key='order_id', on_schema_change='append_new_columns') }}
{%- set watermark = lake_watermark() %}

with

source as (

    select *, snapshot_id as _snapshot_id from {{ source('shop', 'orders') }}
    where {{ landed_after(watermark) }}

),

renamed as (

    select
        -- ids
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,

        -- attributes
        lower(trim(status)) as order_status,
        upper(nullif(trim(currency), '')) as currency,

        -- numbers
        cast(shipping_amount as decimal(12, 2)) as shipping_amount,

        -- timestamps (the shop database stores UTC without an offset)
        timezone('UTC', cast(ordered_at as timestamp)) as ordered_at,
        timezone('UTC', cast(shipped_at as timestamp)) as shipped_at,
        timezone('UTC', cast(delivered_at as timestamp)) as delivered_at,
        timezone('UTC', cast(updated_at as timestamp)) as updated_at,

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

),

versions as (

    {{ with_current_versions('renamed', 'order_id') }}

),

final as (

    -- the latest version of each order across batches (incremental extracts overlap)
    select * from versions
    {{ latest_version('order_id', 'updated_at desc, _ingested_at desc, _load_id desc') }}

)

select * from final
