with

source as (

    select * from {{ source('iot', 'sensor_readings') }}

),

renamed as (

    select
        -- ids
        trim(sensor_id) as sensor_id,
        cast(warehouse_id as integer) as warehouse_id,

        -- numbers
        cast(temperature_c as decimal(6, 2)) as temperature_c,

        -- timestamps (devices report UTC)
        timezone('UTC', cast(reading_ts as timestamp)) as read_at,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

live as (

    -- the same sensors over MQTT (`lakehouse collect`), as they report
    select
        sensor_id,
        warehouse_id,
        cast(temperature_c as decimal(6, 2)) as temperature_c,
        read_at,
        _load_id,
        _ingested_at
    from {{ source('sensors', 'readings') }}

),

unioned as (

    select * from renamed
    union all by name
    select * from live

),

final as (

    -- a re-sent file repeats readings: one per sensor and instant
    select * from unioned
    {{ latest_version('sensor_id, read_at') }}

)

select * from final
