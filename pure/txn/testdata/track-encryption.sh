#!/bin/bash
# Computes one line of track-encryption.txt with OpenSSL, independently of the Rust code.
# usage: key clear
key=$1; clear=$2
t=${clear//=/D}
len=${#t}
p=$t; if (( len % 2 )); then p=${p}0; fi
n=$(( ${#p} / 2 ))
start=$(( (n-9)*2 ))
blk=${p:$start:16}
ct=$(echo -n "$blk" | xxd -r -p | openssl enc -des-ede-ecb -K "$key" -nopad 2>/dev/null | xxd -p | tr a-f A-F)
out=${p:0:$start}${ct}${p:$((start+16))}
echo "$key $clear ${out:0:$len}"
