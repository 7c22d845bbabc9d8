with

source as (

    select * from {{ source('suppliers', 'catalog') }}

),

renamed as (

    select
        -- ids
        cast(supplier_id as bigint) as supplier_id,
        upper(trim(sku)) as sku,

        -- attributes
        trim(supplier_name) as supplier_name,

        -- numbers
        cast(supplier_price as decimal(12, 2)) as supplier_price,
        cast(lead_time_days as integer) as lead_time_days,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('supplier_id, sku') }}

)

select * from final
