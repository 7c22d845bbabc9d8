with

products as (

    select * from {{ ref('stg_shop__products') }}

),

catalog as (

    select * from {{ ref('stg_suppliers__catalog') }}

),

final as (

    select
        -- ids
        products.product_id,
        products.supplier_id,

        -- attributes
        products.sku,
        products.product_name,
        products.category,
        products.needs_cold_storage,
        catalog.supplier_name,

        -- numbers
        products.list_price,
        catalog.supplier_price,
        products.list_price - catalog.supplier_price as unit_margin,
        catalog.lead_time_days

    from products
    left join catalog
        on products.supplier_id = catalog.supplier_id
        and products.sku = catalog.sku

)

select * from final
