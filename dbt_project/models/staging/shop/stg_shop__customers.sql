with

customers as (

    select * from {{ ref('base_shop__customers') }}

),

final as (

    select * from customers
    {{ latest_version('customer_id', 'updated_at desc, _ingested_at desc, _load_id desc') }}

)

select * from final
