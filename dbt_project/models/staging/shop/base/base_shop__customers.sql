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
        {{ shop_customer_columns() }}

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
