impl ImageFilter for Invert {
    fn apply(&self, input: ApplyInput) -> ApplyOutput {
        invert(input)
    }
}
#[allow(non_upper_case_globals)]
const _: () = {
    static __FIDIUS_VTABLE: <dyn ImageFilter as ::fidius::__private::Implement<
        Invert,
    >>::VTable = <dyn ImageFilter as ::fidius::__private::Implement<Invert>>::VTABLE;
    #[unsafe(export_name = "fidius_desc__ImageFilter__Invert")]
    static __FIDIUS_DESCRIPTOR: ::fidius::__private::PluginDescriptor = ::fidius::__private::descriptor::<
        Invert,
    >(
        &<dyn ImageFilter as ::fidius::__private::Interface>::INFO,
        "Invert",
        &__FIDIUS_VTABLE as *const _ as *const ::core::ffi::c_void,
    );
    const __FIDIUS_RECORD: ::fidius::__private::MetaRecord = ::fidius::__private::MetaRecord {
        interface: &<dyn ImageFilter as ::fidius::__private::Interface>::INFO,
        plugin_name: "Invert",
    };
    const __FIDIUS_META_LEN: usize = ::fidius::__private::meta_len(&__FIDIUS_RECORD);
    #[unsafe(export_name = "fidius_meta__ImageFilter__Invert")]
    static __FIDIUS_META: [u8; __FIDIUS_META_LEN] = ::fidius::__private::meta_encode::<
        __FIDIUS_META_LEN,
    >(&__FIDIUS_RECORD);
};
const _: () = {
    #[unsafe(export_name = "fidius_library")]
    static __FIDIUS_LIBRARY: ::fidius::__private::LibraryHeader = ::fidius::__private::LibraryHeader::CURRENT;
};
