with

customers as (

    select * from {{ ref('base_shop__customers') }}

),

latest_dump as (

    -- a customer deleted at the source is not in the latest dump, so not current
    select max(_snapshot_id) as _snapshot_id from customers

),

final as (

    select * exclude (_snapshot_id) from customers
    where _snapshot_id = (select _snapshot_id from latest_dump)
    {{ latest_version('customer_id', 'updated_at desc, _ingested_at desc, _load_id desc') }}

)

select * from final
