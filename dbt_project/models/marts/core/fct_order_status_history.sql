-- When each order was first seen in each status: every version of an order the lake
-- holds (incremental extracts carry each change), so a status that came and went between
-- two extracts is not here. Incremental: only rows committed since the last build are read.
{{ config(materialized='incremental', unique_key=['order_id', 'order_status']) }}
{%- set watermark = lake_watermark() %}

with

source as (

    select order_id, status, updated_at, _ingested_at, snapshot_id as _snapshot_id
    from {{ source('shop', 'orders') }}
    where {{ landed_after(watermark) }}

),

renamed as (

    select
        cast(order_id as bigint) as order_id,
        lower(trim(status)) as order_status,
        timezone('UTC', cast(updated_at as timestamp)) as updated_at,
        _ingested_at,
        _snapshot_id
    from source

),

seen as (

    select order_id, order_status, updated_at as status_at, _ingested_at, _snapshot_id
    from renamed
    {%- if is_incremental() %}
    union all
    select held.order_id, held.order_status, held.status_at, held._ingested_at,
        held._snapshot_id
    from {{ this }} as held
    semi join renamed
        on held.order_id = renamed.order_id and held.order_status = renamed.order_status
    {%- endif %}

),

final as (

    select
        order_id,
        order_status,
        min(status_at) as status_at,
        max(_ingested_at) as _ingested_at,
        max(_snapshot_id) as _snapshot_id
    from seen
    group by 1, 2

)

select * from final
