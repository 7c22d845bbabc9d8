with

source as (

    select * from {{ source('web', 'clickstream') }}

),

renamed as (

    select
        -- ids
        trim(session_id) as session_id,
        cast(customer_id as bigint) as customer_id,
        cast(context.product_id as bigint) as product_id,

        -- attributes
        lower(trim(event)) as event_name,
        cast(context.device as varchar) as device,
        cast(context.page as varchar) as page,

        -- timestamps
        timezone('UTC', cast(ts as timestamp)) as event_at,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('session_id, event_name', 'event_at, _ingested_at desc') }}

)

select * from final
