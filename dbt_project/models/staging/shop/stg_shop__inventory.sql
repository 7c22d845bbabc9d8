with

source as (

    select * from {{ source('shop', 'inventory') }}

),

renamed as (

    select
        -- ids
        cast(product_id as bigint) as product_id,
        cast(warehouse_id as integer) as warehouse_id,

        -- numbers
        cast(on_hand as integer) as on_hand,
        cast(reorder_point as integer) as reorder_point,

        -- timestamps
        timezone('UTC', cast(updated_at as timestamp)) as updated_at,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('product_id, warehouse_id') }}

)

select * from final
