with

source as (

    -- the live customers (incremental, from the change log)
    select * from {{ ref('base_shop__customers_current') }}

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
        timezone('UTC', cast(coalesce(updated_at, created_at) as timestamp)) as updated_at,

        -- lineage
        _load_id,
        _ingested_at

    from source

)

select * from renamed
