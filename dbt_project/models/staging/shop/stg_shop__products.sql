with

source as (

    select * from {{ source('shop', 'products') }}

),

renamed as (

    select
        -- ids
        cast(product_id as bigint) as product_id,
        cast(supplier_id as bigint) as supplier_id,

        -- attributes
        upper(trim(sku)) as sku,
        trim(product_name) as product_name,
        lower(trim(category)) as category,

        cast(needs_cold_storage as boolean) as needs_cold_storage,

        -- numbers
        cast(unit_price as decimal(12, 2)) as list_price,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('product_id') }}

)

select * from final
