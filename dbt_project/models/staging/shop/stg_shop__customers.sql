with

versions as (

    select * from {{ ref('base_shop__customers') }}

),

live as (

    -- the customers the source holds now: a customer deleted there is gone
    {{ cdc_current(source('shop', 'customers'), 'customer_id') }}

),

final as (

    select * exclude (_is_deleted, _lsn, _seq, _snapshot_id) from versions
    where customer_id in (select cast(customer_id as bigint) from live)
    qualify row_number() over (partition by customer_id order by _lsn desc, _seq desc) = 1

)

select * from final
