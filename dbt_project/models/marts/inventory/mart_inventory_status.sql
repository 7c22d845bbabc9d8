-- One row per product, warehouse and day of the stock snapshot: stock on hand, units sold
-- (last 28 days), days of cover, a reorder flag, and cold-storage sensor excursions.
with

inventory as (

    select * from {{ ref('stg_shop__inventory') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

lines as (

    select * from {{ ref('fct_order_items') }}

),

readings as (

    select * from {{ ref('stg_iot__sensor_readings') }}

),

sales as (

    -- orders are not assigned to warehouses: demand is split evenly across them
    select
        product_id,
        sum(quantity) filter (
            where ordered_at > (select max(updated_at) from inventory) - interval 28 day
        ) as units_sold_28d
    from lines
    where is_revenue
    group by 1

),

excursions as (

    -- cold storage must stay within 2-8 °C
    select
        warehouse_id,
        count(*) filter (where temperature_c not between 2 and 8) as readings_out_of_range,
        max(read_at) filter (where temperature_c not between 2 and 8) as last_excursion_at
    from readings
    group by 1

),

warehouses as (

    select count(distinct warehouse_id) as warehouse_count from inventory

),

final as (

    select
        -- ids
        inventory.product_id,
        inventory.warehouse_id,

        -- attributes
        cast(inventory.updated_at as date) as snapshot_date,
        products.needs_cold_storage,

        -- numbers
        inventory.on_hand,
        inventory.reorder_point,
        coalesce(sales.units_sold_28d, 0) / warehouses.warehouse_count as units_sold_28d,
        case when coalesce(sales.units_sold_28d, 0) > 0
            then round(inventory.on_hand
                       / (sales.units_sold_28d / warehouses.warehouse_count / 28.0), 1)
        end as days_of_cover,
        coalesce(products.lead_time_days, 0) as lead_time_days,
        case when products.needs_cold_storage
            then coalesce(excursions.readings_out_of_range, 0) else 0
        end as sensor_excursions,

        -- flags
        inventory.on_hand <= inventory.reorder_point
            or coalesce(inventory.on_hand
                        / nullif(sales.units_sold_28d / warehouses.warehouse_count / 28.0, 0),
                        1e9) < coalesce(products.lead_time_days, 0)
            as needs_reorder,

        -- timestamps
        case when products.needs_cold_storage then excursions.last_excursion_at end
            as last_excursion_at

    from inventory
    cross join warehouses
    left join products on inventory.product_id = products.product_id
    left join sales on inventory.product_id = sales.product_id
    left join excursions on inventory.warehouse_id = excursions.warehouse_id

)

select * from final
