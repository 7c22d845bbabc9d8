with

source as (

    select * from {{ source('shop', 'order_items') }}

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
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('order_item_id') }}

)

select * from final
