-- Incremental: each build reads only the events committed since the last one, and keeps
-- the first of each session's steps among those and the one already held.
{{ config(
    materialized='incremental',
    unique_key=['session_id', 'event_name'],
    on_schema_change='append_new_columns',
) }}
{%- set watermark = lake_watermark() %}

with

source as (

    select *, snapshot_id as _snapshot_id from {{ source('web', 'clickstream') }}
    where {{ landed_after(watermark) }}

),

renamed as (

    select
        -- ids
        trim(session_id) as session_id,
        cast(customer_id as bigint) as customer_id,
        cast(context.product_id as bigint) as product_id,

        -- attributes
        lower(trim(event)) as event_name,
        cast(context.device as varchar) as device,
        cast(context.page as varchar) as page,

        -- timestamps
        timezone('UTC', cast(ts as timestamp)) as event_at,

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

),

versions as (

    {{ with_current_versions('renamed', '(session_id, event_name)') }}

),

final as (

    select * from versions
    {{ latest_version('session_id, event_name', 'event_at, _ingested_at desc') }}

)

select * from final
