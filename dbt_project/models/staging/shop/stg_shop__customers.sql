with

source as (

    select * from {{ source('shop', 'customers') }}

),

renamed as (

    select
        -- ids
        cast(customer_id as bigint) as customer_id,

        -- attributes
        lower(nullif(trim(email), '')) as email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        upper(nullif(trim(country), '')) as country_code,

        -- timestamps
        timezone('UTC', cast(created_at as timestamp)) as created_at,

        -- lineage
        _load_id,
        _ingested_at

    from source

),

final as (

    select * from renamed
    {{ latest_version('customer_id') }}

)

select * from final
