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

final as (

    -- a re-sent file repeats readings: one per sensor and instant
    select * from renamed
    {{ latest_version('sensor_id, read_at') }}

)

select * from final
