-- Reviews posted on the shop's site, live: the columns of stg_vendor__reviews.
with

source as (

    select *, snapshot_id as _snapshot_id from {{ source('live', 'reviews') }}

),

renamed as (

    select
        -- ids
        review_id,
        product_id,
        customer_id,

        -- attributes
        nullif(trim(body), '') as review_text,
        author_ip,
        author_verified as is_verified_author,

        -- numbers
        rating,

        -- timestamps
        posted_at as reviewed_at,

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

)

select * from renamed
