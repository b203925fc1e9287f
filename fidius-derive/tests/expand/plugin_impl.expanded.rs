impl ImageFilter for Invert {
    fn apply(&self, input: ApplyInput) -> ApplyOutput {
        invert(input)
    }
}
#[cfg(target_family = "wasm")]
#[allow(non_snake_case, clippy::all)]
const _: () = {
    fn __fidius_wasm_create(
        __config: &[u8],
        __host: ::fidius::__private::WasmHost,
    ) -> ::core::result::Result<
        ::std::boxed::Box<dyn ::core::any::Any>,
        ::fidius::__private::WasmCreateError,
    > {
        let _ = (&__config, &__host);
        let __made: ::core::result::Result<
            Invert,
            ::fidius::__private::WasmCreateError,
        > = {
            let __config: InvertConfig = ::fidius::__private::wasm_config::<
                InvertConfig,
            >(__config)
                .map_err(::fidius::__private::WasmCreateError::Config)?;
            match <Invert>::configure(
                __config,
                ::fidius::__private::wasm_host_client("Invert", __host),
            ) {
                ::core::result::Result::Ok(__v) => ::core::result::Result::Ok(__v),
                ::core::result::Result::Err(__e) => {
                    #[allow(unused_imports)]
                    use ::fidius::__private::{
                        IntoPluginErrorDisplay as _, IntoPluginErrorExact as _,
                    };
                    ::core::result::Result::Err(
                        ::fidius::__private::WasmCreateError::Rejected(
                            (&&::fidius::__private::ErrorWrap(__e)).fidius_plugin_error(),
                        ),
                    )
                }
            }
        };
        let __plugin: ::std::rc::Rc<dyn ImageFilter> = ::std::rc::Rc::new(__made?);
        ::core::result::Result::Ok(::fidius::__private::wasm_made(__plugin))
    }
    ::fidius::__private::inventory::submit! {
        ::fidius::__private::WasmPluginEntry { interface : < dyn ImageFilter as
        ::fidius::__private::Interface > ::INFO.name, plugin : "Invert", create :
        __fidius_wasm_create, }
    }
};
#[cfg(target_family = "wasm")]
::core::compile_error!(
    "no WIT found for interface `ImageFilter`: build WASM plugins with `cargo fidius build --target wasm32-wasip2`, which finds `wit/image-filter.wit` in the interface crate (write it with `cargo fidius wit -p <interface crate>`), or list the directory holding it in FIDIUS_WIT_PATH"
);
const _: () = ::fidius::__private::accepts_config::<dyn ImageFilter, InvertConfig>();
impl ::fidius::__private::Implemented for Invert {
    const METHODS: &'static [&'static str] = &["apply"];
}
#[cfg(not(target_family = "wasm"))]
#[allow(non_upper_case_globals, clippy::undocumented_unsafe_blocks, unused_unsafe)]
const _: () = {
    static __FIDIUS_VTABLE: <dyn ImageFilter as ::fidius::__private::Implement<
        Invert,
    >>::VTable = <dyn ImageFilter as ::fidius::__private::Implement<Invert>>::VTABLE;
    unsafe extern "C" fn __fidius_create(
        __config_ptr: *const u8,
        __config_len: usize,
        __host: *const ::fidius::__private::RawHost,
        __out: *mut ::fidius::__private::InstancePtr,
        __err: *mut ::fidius::__private::RBuf,
    ) -> u32 {
        let _ = (__config_ptr, __config_len, __host);
        unsafe {
            ::fidius::__private::create::<
                Invert,
            >(
                __out,
                __err,
                || {
                    let __config: InvertConfig = unsafe {
                        ::fidius::__private::config::<
                            InvertConfig,
                        >(__config_ptr, __config_len)
                    }?;
                    match <Invert>::configure(
                        __config,
                        unsafe { ::fidius::__private::host_client(__host) }?,
                    ) {
                        ::core::result::Result::Ok(__v) => {
                            ::core::result::Result::Ok(__v)
                        }
                        ::core::result::Result::Err(__e) => {
                            #[allow(unused_imports)]
                            use ::fidius::__private::{
                                IntoPluginErrorDisplay as _, IntoPluginErrorExact as _,
                            };
                            ::core::result::Result::Err(
                                ::fidius::__private::rejected(
                                    (&&::fidius::__private::ErrorWrap(__e))
                                        .fidius_plugin_error(),
                                ),
                            )
                        }
                    }
                },
            )
        }
    }
    #[unsafe(export_name = "fidius_desc__ImageFilter__Invert")]
    static __FIDIUS_DESCRIPTOR: ::fidius::__private::PluginDescriptor = ::fidius::__private::descriptor::<
        Invert,
    >(
        &<dyn ImageFilter as ::fidius::__private::Interface>::INFO,
        "Invert",
        &__FIDIUS_VTABLE as *const _ as *const ::core::ffi::c_void,
        __fidius_create,
        ::fidius::__private::capabilities(
            &<dyn ImageFilter as ::fidius::__private::Interface>::INFO,
            <Invert as ::fidius::__private::Implemented>::METHODS,
        ),
    );
};
const _: () = {
    const __FIDIUS_RECORD: ::fidius::__private::MetaRecord = ::fidius::__private::MetaRecord {
        interface: &<dyn ImageFilter as ::fidius::__private::Interface>::INFO,
        plugin_name: "Invert",
        implemented: <Invert as ::fidius::__private::Implemented>::METHODS,
        config_type: "InvertConfig",
    };
    const __FIDIUS_META_LEN: usize = ::fidius::__private::meta_len(&__FIDIUS_RECORD);
    #[cfg_attr(
        not(target_family = "wasm"),
        unsafe(export_name = "fidius_meta__ImageFilter__Invert")
    )]
    #[cfg_attr(target_family = "wasm", unsafe(link_section = "fidius-meta"), used)]
    static __FIDIUS_META: [u8; __FIDIUS_META_LEN] = ::fidius::__private::meta_encode::<
        __FIDIUS_META_LEN,
    >(&__FIDIUS_RECORD);
};
#[cfg(not(target_family = "wasm"))]
const _: () = {
    #[unsafe(export_name = "fidius_library")]
    static __FIDIUS_LIBRARY: ::fidius::__private::LibraryHeader = ::fidius::__private::LibraryHeader::CURRENT;
};
