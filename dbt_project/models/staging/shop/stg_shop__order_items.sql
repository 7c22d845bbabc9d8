-- Incremental: each build reads only the rows committed since the last one.
{{ config(materialized='incremental', unique_key='order_item_id', on_schema_change='append_new_columns') }}
{%- set watermark = lake_watermark() %}

with

source as (

    select *, snapshot_id as _snapshot_id from {{ source('shop', 'order_items') }}
    where {{ landed_after(watermark) }}

),

renamed as (

    select
        -- ids
        cast(order_item_id as bigint) as order_item_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as bigint) as product_id,

        -- numbers
        cast(quantity as integer) as quantity,
        cast(unit_price as decimal(12, 2)) as unit_price,
        cast(coalesce(discount_amount, 0) as decimal(12, 2)) as discount_amount,

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

),

versions as (

    {{ with_current_versions('renamed', 'order_item_id') }}

),

final as (

    select * from versions
    {{ latest_version('order_item_id') }}

)

select * from final
