-- Every version of every customer: one per change in the customers change log (the
-- table is captured with `cdc: true`: a snapshot, then inserts, updates and deletes),
-- cleaned. stg_shop__customers keeps the live customers' latest, dim_customers_history
-- the versions.
with

source as (

    {{ cdc_versions(source('shop', 'customers'), 'customer_id') }}

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

        -- the change
        _is_deleted,
        _lsn,
        _seq,
        _commit_ts,

        -- lineage
        _load_id,
        _ingested_at,
        _snapshot_id

    from source

)

select * from renamed
