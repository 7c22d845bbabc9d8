-- Incremental: each build reads only the rows committed since the last one, and keeps the
-- latest version of each review among those and the version already held.
{{ config(materialized='incremental', unique_key='review_id', on_schema_change='append_new_columns') }}
{%- set watermark = lake_watermark() %}

with

source as (

    select *, snapshot_id as _snapshot_id from {{ source('vendor', 'reviews') }}
    where {{ landed_after(watermark) }}

),

renamed as (

    select
        -- ids
        cast(review_id as bigint) as review_id,
        cast(product_id as bigint) as product_id,
        cast(customer_id as bigint) as customer_id,

        -- attributes
        nullif(trim(cast(body as varchar)), '') as review_text,
        cast(author.ip as varchar) as author_ip,
        cast(author.verified as boolean) as is_verified_author,

        -- numbers
        cast(rating as integer) as rating,

        -- timestamps (the API sends ISO 8601 in UTC)
        cast(updated_at as timestamptz) as reviewed_at,

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

),

versions as (

    {{ with_current_versions('renamed', 'review_id') }}

),

final as (

    select * from versions
    {{ latest_version('review_id', 'reviewed_at desc, _ingested_at desc') }}

)

select * from final
