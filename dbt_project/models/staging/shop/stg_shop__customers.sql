with

source as (

    -- the live customers (incremental, from the change log)
    select * from {{ ref('base_shop__customers_current') }}

),

renamed as (

    select
        {{ shop_customer_columns() }}

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

)

select * from renamed
